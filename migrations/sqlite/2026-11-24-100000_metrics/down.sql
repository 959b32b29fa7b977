DROP TABLE metric_samples;
