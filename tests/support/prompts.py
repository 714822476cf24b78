"""A prompt's messages as a call should render them, worked out the plain way (each
`{{name}}` replaced in turn with `str.replace`), not with the hub's renderer: what tests and
benchmarks expect the upstream to receive."""

__all__ = ["rendered"]


def rendered(messages: list[dict[str, str]], **values: str) -> list[dict[str, str]]:
    """`messages` with each `{{name}}` of `values` replaced, in the order `values` give."""
    result = []
    for message in messages:
        content = message["content"]
        for name, value in values.items():
            content = content.replace("{{" + name + "}}", value)
        result.append({"role": message["role"], "content": content})
    return result
