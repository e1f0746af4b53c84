"""PostgreSQL plumbing: database URLs, error classification, JDBC reads, the embedded cluster and its schema."""
