"""Scale-out cores: where a room lives among the worker processes (sans-IO)."""
