# One image runs the whole platform, in production mode: it listens on every interface, so it
# refuses to start without secrets of its own (make each with
# `python -c "import secrets; print(secrets.token_urlsafe(32))"`):
#   docker run -p 8000:8000 -p 8100:8100 -v switchboard-data:/data \
#     -e SWITCHBOARD_APP_SERVICE_TOKEN=... -e SWITCHBOARD_SECRET_KEY=... \
#     -e CHAINLIT_AUTH_SECRET=... switchboard
# Stop it with time to finish what it holds (README: Stopping): `docker stop -t 60 ...`.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/switchboard
COPY . .
# Editable, so the chat app runs from this folder with its chainlit.md and .chainlit/.
RUN pip install --no-cache-dir -c constraints.txt -e '.[local-model]'

ENV SWITCHBOARD_ENVIRONMENT=production \
    SWITCHBOARD_DATA_DIR=/data \
    SWITCHBOARD_HUB_HOST=0.0.0.0 \
    SWITCHBOARD_APP_HOST=0.0.0.0
VOLUME /data
EXPOSE 8000 8100
CMD ["switchboard", "run"]
