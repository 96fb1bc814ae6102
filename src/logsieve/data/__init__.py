"""logsieve.data"""
