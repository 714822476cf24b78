// Opens a conversation at the message a search result links to: /thread/{id}#step-{message id}.
// Chainlit gives each message the element id `step-{id}` once the conversation has loaded, and
// scrolls to the end as it does; the message is brought into view after that, and outlined.
(() => {
  const target = decodeURIComponent(window.location.hash.slice(1));
  if (!target.startsWith("step-")) return;
  let tries = 0;
  const timer = window.setInterval(() => {
    const element = document.getElementById(target);
    tries += 1;
    if (element === null) {
      if (tries > 150) window.clearInterval(timer);
      return;
    }
    window.clearInterval(timer);
    element.dataset.searchTarget = "true";
    element.style.outline = "2px solid #f59e0b";
    element.style.borderRadius = "6px";
    for (const delay of [0, 400, 1200]) {
      window.setTimeout(() => element.scrollIntoView({ block: "center" }), delay);
    }
    window.setTimeout(() => {
      element.style.outline = "";
    }, 6000);
  }, 200);
})();
