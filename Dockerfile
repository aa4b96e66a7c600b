# One image for every Switchboard process; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends snmp \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --create-home switchboard

WORKDIR /app
COPY pyproject.toml README.md ./
COPY switchboard ./switchboard
COPY services ./services
COPY schemas ./schemas
COPY migrations ./migrations
COPY deploy ./deploy
COPY mibs ./mibs
RUN pip install --no-cache-dir -e .

USER switchboard
ENTRYPOINT ["switchboard"]
CMD ["--help"]
