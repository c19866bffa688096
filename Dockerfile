FROM python:3.11.14-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
# Configuration (the database URL, tokens, keys) comes from the environment at run time
# (docker-compose.yml); nothing secret is baked into the image.
ENV DISPUTEFLOW_HOME=/app
EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
