"""Talking to WeCom: transport (session, token, retries), frequency budget, concurrency gate, error rules.

Pure Python; the endpoints built on it are in ``wecom.api.client``.
"""
