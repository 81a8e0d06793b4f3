#!/bin/bash
# Runs once, when the primary's data folder is created: lets the streaming
# replica (the `scale` profile) connect for replication.
set -euo pipefail
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
