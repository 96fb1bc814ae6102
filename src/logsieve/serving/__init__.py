"""logsieve.serving"""
