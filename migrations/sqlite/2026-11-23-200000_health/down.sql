DROP TABLE health_checks;
DROP TABLE service_health;
