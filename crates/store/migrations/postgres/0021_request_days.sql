-- The console's chart of requests per day counts requests received, completed and gone overdue in a range
-- of days: three indexed range reads (never a scan of the requests), one per time.
CREATE INDEX requests_by_received ON requests (received_at);
CREATE INDEX requests_by_closed ON requests (closed_at, status) WHERE closed_at IS NOT NULL;
CREATE INDEX requests_by_overdue ON requests (overdue_at) WHERE overdue_at IS NOT NULL;
