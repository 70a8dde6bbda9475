-- Fair shares: what one visitor may hold is counted per API key and per
-- network (the client's /24 for IPv4, /64 for IPv6, recorded when its key
-- was minted), below the global caps.

-- A key's network, and when it was last used (written at most once a
-- minute): an idle key expires, and at -max-keys the least recently used
-- key with no unfinished work makes room.
ALTER TABLE api_keys ADD COLUMN network TEXT NOT NULL DEFAULT '';
CREATE INDEX api_keys_lru ON api_keys (last_used_at);
CREATE INDEX api_keys_network ON api_keys (network, last_used_at);

-- A job carries its owner's network, so its end gives the network's slot back.
ALTER TABLE jobs ADD COLUMN network TEXT NOT NULL DEFAULT '';

-- Unfinished jobs per network: the per-network share, kept the way
-- job_owners keeps the per-key one (a guarded update in the job's
-- transaction).
CREATE TABLE job_networks (
  network    TEXT PRIMARY KEY,
  unfinished INTEGER NOT NULL DEFAULT 0 CHECK (unfinished >= 0)
);

-- A webhook carries its owner's network: pending webhooks are shared per
-- network too.
ALTER TABLE webhook_messages ADD COLUMN network TEXT NOT NULL DEFAULT '';
CREATE INDEX webhook_messages_network ON webhook_messages (network) WHERE state = 'sending';

-- Inboxes: the bytes their deliveries take (the global budget evicts from
-- the inbox holding most), and their last delivery or change (idle ones
-- expire).
ALTER TABLE inboxes ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inboxes ADD COLUMN last_active_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inbox_deliveries ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE inbox_deliveries SET stored_bytes = length(doc);
UPDATE inboxes SET last_active_at = created_at,
  stored_bytes = (SELECT COALESCE(SUM(d.stored_bytes), 0) FROM inbox_deliveries d WHERE d.inbox_id = inboxes.id);
CREATE INDEX inboxes_idle ON inboxes (last_active_at);
CREATE INDEX inboxes_bytes ON inboxes (stored_bytes);
