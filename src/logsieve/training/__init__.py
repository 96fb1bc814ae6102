"""logsieve.training"""
