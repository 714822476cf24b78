"""Who people are: signing in with the identity provider, sessions, and their cookies."""
