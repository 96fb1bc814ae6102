"""A realistic HDFS log simulator (the embedded default data): block life-cycles, timelines, raw lines."""
