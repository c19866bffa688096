FROM python:3.11.14-slim
WORKDIR /app
COPY . .
# The code runs from /app: its bytecode is compiled here, so the image works the same with
# PYTHONDONTWRITEBYTECODE set or a read-only file system (the workflow sandbox loads the
# workflow modules for every case).
RUN pip install --no-cache-dir . && python -m compileall -q -x '/\.' /app
# Configuration (the database URL, tokens, keys) comes from the environment at run time
# (docker-compose.yml); nothing secret is baked into the image.
ENV DISPUTEFLOW_HOME=/app
EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
