"""The demo loader, one module per domain; ``demo.seed.demo_seed`` runs them in order."""
