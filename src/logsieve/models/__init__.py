"""logsieve.models"""
