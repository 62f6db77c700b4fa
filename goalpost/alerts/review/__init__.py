"""The business review: one email per period (an ISO week, or a month) that tells the owner
how it went against the period before, last year and the target, what drove it, what moved,
what was unusual and why, where the goals are heading, the stock at risk and what to know
about the data.

period (weeks and months), figures (every number, from the marts, insights and control
schema), writing (the sentences, in the client's language), charts and message (the email
and the page), build (one review), deliver (once per period and recipient) and manage (what
`goalpost review` calls).
"""
