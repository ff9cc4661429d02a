"""The HTTP edge of the webhook functions: API Gateway's event, token, signatures, decryption."""
