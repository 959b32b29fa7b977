-- Acknowledging an alert tells everyone who was paged about it through the
-- outbox: a new event.
ALTER TABLE notifications DROP CONSTRAINT notifications_event_known;
ALTER TABLE notifications ADD CONSTRAINT notifications_event_known
    CHECK (event IN ('opened', 'acknowledged', 'resolved', 'reminder', 'escalated', 'report'));
