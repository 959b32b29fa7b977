DROP TABLE run_requests;
DROP FUNCTION ops_worker_run_request_notify();
