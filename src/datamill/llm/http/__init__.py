"""The HTTP client of the model gateway: kept-alive HTTP/1.1 connections, JSON in and out.

`transport.HttpTransport` pools connections (`http1.Http1Connection`) and times requests out
(`deadlines.Deadlines`).
"""
