DELETE FROM notifications WHERE event = 'acknowledged';
ALTER TABLE notifications DROP CONSTRAINT notifications_event_known;
ALTER TABLE notifications ADD CONSTRAINT notifications_event_known
    CHECK (event IN ('opened', 'resolved', 'reminder', 'escalated', 'report'));
