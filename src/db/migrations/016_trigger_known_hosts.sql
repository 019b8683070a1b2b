-- The SSH server's host keys a trigger's clones accept, in OpenSSH known_hosts format (public, not
-- sealed). Null: none given, and a new host key is accepted unchecked, as before.
ALTER TABLE build_triggers ADD COLUMN known_hosts text;
