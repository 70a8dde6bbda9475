-- The sandbox's own tables (River's are migrated by rivermigrate).
-- Times and durations are BIGINT nanoseconds (0: not set); flags are 0 or 1.

-- One row per job the API accepted: what its owner reads on the status
-- monitor. River runs the work; river_id names the River job.
CREATE TABLE jobs (
  id             TEXT PRIMARY KEY,
  owner          TEXT NOT NULL,
  kind           TEXT NOT NULL,
  status         TEXT NOT NULL,
  percent        INTEGER NOT NULL DEFAULT 0,
  message        TEXT NOT NULL DEFAULT '',
  input          BLOB,
  output         BLOB,
  failure_code   TEXT NOT NULL DEFAULT '',
  failure_detail TEXT NOT NULL DEFAULT '',
  created_at     BIGINT NOT NULL,
  updated_at     BIGINT NOT NULL,
  started_at     BIGINT NOT NULL DEFAULT 0,
  finished_at    BIGINT NOT NULL DEFAULT 0,
  expires_at     BIGINT NOT NULL DEFAULT 0,
  expected       BIGINT NOT NULL DEFAULT 0,
  last_beat      BIGINT NOT NULL DEFAULT 0,
  version        BIGINT NOT NULL DEFAULT 1,
  plan           BLOB NOT NULL,
  step           INTEGER NOT NULL DEFAULT 0,
  next_at        BIGINT NOT NULL DEFAULT 0,
  -- The River job that drives it, and whether one should: 0 once the job
  -- is terminal, or silent (a stalled worker the dead-man's switch ends).
  river_id       BIGINT NOT NULL DEFAULT 0,
  driven         INTEGER NOT NULL DEFAULT 1,
  -- 1 once expired: input and output are dropped, id, owner and kind stay
  -- so the monitor can answer 410 Gone.
  tombstone      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_processing ON jobs (last_beat) WHERE status = 'processing';
CREATE INDEX jobs_unfinished ON jobs (status) WHERE status IN ('queued', 'processing');
CREATE INDEX jobs_expiring ON jobs (expires_at) WHERE expires_at > 0;
CREATE INDEX jobs_owner ON jobs (owner, created_at, id);

-- Unfinished jobs per owner, the cap every replica enforces: an accepted
-- job takes a slot with a guarded UPDATE, its end gives it back.
CREATE TABLE job_owners (
  owner      TEXT PRIMARY KEY,
  unfinished INTEGER NOT NULL DEFAULT 0 CHECK (unfinished >= 0)
);

-- Idempotency-Key records. job_id is written in the same transaction as
-- the job, so a record names its job or no job exists.
CREATE TABLE idempotency (
  owner       TEXT NOT NULL,
  key         TEXT NOT NULL,
  fingerprint BLOB NOT NULL,
  started_at  BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL,
  job_id      TEXT NOT NULL DEFAULT '',
  status      INTEGER NOT NULL DEFAULT 0,
  header      BLOB,
  body        BLOB,
  PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_expiry ON idempotency (expires_at);

-- API keys: only a digest of each.
CREATE TABLE api_keys (
  digest       BLOB PRIMARY KEY,
  id           TEXT NOT NULL UNIQUE,
  created_at   BIGINT NOT NULL,
  last_used_at BIGINT NOT NULL
);

-- Each API key's webhook signing secrets.
CREATE TABLE webhook_secrets (
  owner            TEXT PRIMARY KEY,
  current          TEXT NOT NULL,
  current_created  BIGINT NOT NULL,
  previous         TEXT NOT NULL DEFAULT '',
  previous_expires BIGINT NOT NULL DEFAULT 0
);

-- Built-in webhook inboxes and what they received.
CREATE TABLE inboxes (
  id                    TEXT PRIMARY KEY,
  owner                 TEXT NOT NULL,
  created_at            BIGINT NOT NULL,
  received              INTEGER NOT NULL DEFAULT 0,
  behaviour_status      INTEGER NOT NULL DEFAULT 0,
  behaviour_remaining   INTEGER NOT NULL DEFAULT 0,
  behaviour_retry_after INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inboxes_owner ON inboxes (owner, created_at);
CREATE INDEX inboxes_age ON inboxes (created_at);

-- One row per API key that made inboxes: creating an inbox updates it
-- first, so creations for one key take turns on every replica and the
-- per-key cap holds.
CREATE TABLE inbox_owners (
  owner           TEXT PRIMARY KEY,
  last_created_at BIGINT NOT NULL DEFAULT 0
);

-- seq counts an inbox's deliveries from 1 (its received count then).
CREATE TABLE inbox_deliveries (
  id          TEXT PRIMARY KEY,
  inbox_id    TEXT NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  received_at BIGINT NOT NULL,
  bytes       INTEGER NOT NULL,
  doc         BLOB NOT NULL
);
CREATE UNIQUE INDEX inbox_deliveries_inbox ON inbox_deliveries (inbox_id, seq);

-- The webhook outbox: one message per finished import with a callback URL,
-- written in the transaction that finished the job; River jobs deliver it,
-- one attempt per run. state is sending (an attempt is due or under way),
-- delivered, failed or disabled. attempts counts the automatic attempts;
-- manual is 1 while a manual redelivery is sending. river_id names the
-- River job that delivers it now: a run of any other is stale.
CREATE TABLE webhook_messages (
  id         TEXT PRIMARY KEY,
  owner      TEXT NOT NULL,
  job_id     TEXT NOT NULL,
  url        TEXT NOT NULL,
  type       TEXT NOT NULL,
  payload    BLOB NOT NULL,
  created_at BIGINT NOT NULL,
  state      TEXT NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  next_at    BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  updated_at BIGINT NOT NULL,
  manual     INTEGER NOT NULL DEFAULT 0,
  river_id   BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX webhook_messages_job ON webhook_messages (job_id);
CREATE INDEX webhook_messages_owner ON webhook_messages (owner, state, updated_at);
CREATE INDEX webhook_messages_sending ON webhook_messages (next_at) WHERE state = 'sending';
CREATE INDEX webhook_messages_done ON webhook_messages (updated_at) WHERE state <> 'sending';

-- Every attempt at delivering a message: the delivery log.
CREATE TABLE webhook_attempts (
  message_id  TEXT NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  doc         BLOB NOT NULL,
  PRIMARY KEY (message_id, seq)
);

-- Endpoints that answered 410 Gone, per API key.
CREATE TABLE webhook_endpoints (
  owner       TEXT NOT NULL,
  url         TEXT NOT NULL,
  disabled_at BIGINT NOT NULL,
  PRIMARY KEY (owner, url)
);
CREATE INDEX webhook_endpoints_age ON webhook_endpoints (disabled_at);
