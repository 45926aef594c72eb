"""confluent-kafka client factory (security settings) and admin helpers."""
