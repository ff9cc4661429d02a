"""Local tooling that is never deployed: local AWS (tools.local_aws: moto, the stack moto's CloudFormation
builds from template.yaml, the gateway), the AIRUDDER simulator (tools.simulator) and the demos (tools.demo)."""
