-- Bearer tokens for the REST API. Only a SHA-256 of each token is stored: tokens are 256 random
-- bits, so a fast hash is enough and lookups stay one indexed read. `prefix` (the first
-- characters) lets people tell tokens apart in listings without revealing them.
CREATE TABLE api_token (
  id BIGINT NOT NULL AUTO_INCREMENT,
  name VARCHAR(250) NOT NULL,
  role VARCHAR(16) NOT NULL,
  token_hash CHAR(64) NOT NULL,
  prefix VARCHAR(16) NOT NULL,
  created_at DATETIME(3) NOT NULL,
  expires_at DATETIME(3) NULL,
  last_used_at DATETIME(3) NULL,
  revoked_at DATETIME(3) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_api_token_hash (token_hash),
  UNIQUE KEY ux_api_token_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Refused requests (401/403) go to the event log with what was asked, never the token.
ALTER TABLE event_log ADD COLUMN detail VARCHAR(1000) NULL;
