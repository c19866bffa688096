FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
ENV DISPUTEFLOW_DATABASE_URL=postgresql+psycopg://disputeflow:disputeflow@ledger-db:5432/disputeflow
EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
