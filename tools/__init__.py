"""Development tools: the local control plane, service launchers and tool builds."""
