"""logsieve.evaluation"""
