"""Wire-compatible APIs: each module translates one hosted service's API to datamill's services."""
