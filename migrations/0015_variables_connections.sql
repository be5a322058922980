-- Variables and connections (Airflow's): key/value settings and credentials that tasks read at
-- run time through ctx.variables and ctx.connection(). With BATON_SECRET_KEY set, a variable's
-- value and a connection's password and extra are stored AES-256-GCM encrypted; the is_*_encrypted
-- flags say which fields are, so rows written before a key was set stay readable.
CREATE TABLE variable (
  `key` VARCHAR(250) NOT NULL,
  val MEDIUMTEXT NOT NULL,
  description TEXT NULL,
  is_encrypted BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (`key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE connection (
  connection_id VARCHAR(250) NOT NULL,
  conn_type VARCHAR(500) NOT NULL,
  description TEXT NULL,
  host VARCHAR(500) NULL,
  login TEXT NULL,
  `schema` VARCHAR(500) NULL,
  port INT NULL,
  password TEXT NULL,
  extra MEDIUMTEXT NULL,
  is_encrypted BOOLEAN NOT NULL DEFAULT FALSE,
  is_extra_encrypted BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (connection_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
