# TradeMaster Web: one image for the web server, the workers and the trading process (bin/entrypoint).
#
#   docker build -t trademaster .
#   docker run -p 8000:8000 --env-file prod.env -v trademaster-var:/app/var trademaster web
#   docker run --env-file prod.env -v trademaster-var:/app/var trademaster worker
#   docker run --env-file prod.env -v trademaster-var:/app/var trademaster trade
#   docker run --env-file prod.env -v trademaster-var:/app/var trademaster seed     (optional demo)
#
# prod.env: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL (PostgreSQL: the web server and the
# workers are separate containers), DJANGO_CSRF_TRUSTED_ORIGINS behind HTTPS, and TRADEMASTER_EXCHANGE_KEY
# (a Fernet key sealing exchange API keys). The containers must share /app/var: imported datasets
# (var/data), training runs (var/runs) and deployed checkpoints (var/deployments) live there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 trademaster
WORKDIR /app

# Requirements first, so a code change does not reinstall them. torch==2.13.0 from PyPI is the CUDA
# build on Linux x86_64 (several GB, runs on CPU too); CPU-only builds can use PyTorch's CPU wheel index.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic runs with the demo settings (the real secret key is a runtime secret); the copies in
# staticfiles/ are what WhiteNoise serves with DEBUG off.
RUN python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p var \
    && chown -R trademaster:trademaster var

USER trademaster
# Production by default: DEBUG off, and settings refuse to start without a real DJANGO_SECRET_KEY.
ENV DJANGO_ENV=production
EXPOSE 8000
ENTRYPOINT ["/app/bin/entrypoint"]
CMD ["web"]
