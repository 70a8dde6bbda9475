-- Traces: a job keeps the W3C traceparent of the request that accepted it,
-- so its body can say which trace started it (trace_id) and an operator can
-- find that trace. Jobs accepted before this migration have none ('').
ALTER TABLE jobs ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
