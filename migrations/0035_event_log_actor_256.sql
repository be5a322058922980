-- event_log.actor names an API token as "token:<name>", and a token's name may be 250 characters
-- (api_token.name): 256. At 255 such a token's entries were owned by its name cut short (the name
-- of another token, "token:" + its first 249 characters), and ?owner= could not name it. Widening a
-- VARCHAR whose length already takes two bytes copies no rows: instant on MariaDB 10.4+, in place on
-- MySQL 8. Entries written before keep their cut owner. Not breaking: an older process writes at most 255.
ALTER TABLE event_log MODIFY actor VARCHAR(256) NULL;
