-- The `report` kind announces each report once per target through the
-- outbox: a new event.
ALTER TABLE notifications DROP CONSTRAINT notifications_event_known;
ALTER TABLE notifications ADD CONSTRAINT notifications_event_known
    CHECK (event IN ('opened', 'resolved', 'reminder', 'escalated', 'report'));
