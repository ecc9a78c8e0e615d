-- The reviews written in the run's window: :start inclusive, :end exclusive (dates).
SELECT
    review_id,
    review_date,
    created_at,
    product_name,
    category,
    rating,
    language,
    review_text
FROM reviews
WHERE review_date >= :start
  AND review_date < :end
