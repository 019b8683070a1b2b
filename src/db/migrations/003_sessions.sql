-- Browser sessions are short-lived tokens of their own kind: listed and revocable like personal tokens.
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_kind_check;
ALTER TABLE access_tokens ADD CONSTRAINT access_tokens_kind_check CHECK (kind IN ('personal', 'robot', 'session'));
