"""AWS on this machine: a moto server, the stack built in it from template.yaml by moto's CloudFormation
(after aws-sam-translator's expansion), a local HTTP API gateway, a fault-injecting proxy, and pollers
standing in for Lambda's event source mappings."""
