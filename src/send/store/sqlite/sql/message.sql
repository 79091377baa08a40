-- Message ?1 with its lowest body form (NULL if it has none).
SELECT m.id, m.event_id, m.event_type, m.created_at,
       (SELECT b.body FROM hookrelay_bodies b WHERE b.message_seq = m.seq
        ORDER BY b.form LIMIT 1) AS body
FROM hookrelay_messages m
WHERE m.id = ?1
