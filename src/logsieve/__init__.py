"""logsieve: anomalous HDFS block sessions found with recurrent neural networks."""

__version__ = "0.1.0"
