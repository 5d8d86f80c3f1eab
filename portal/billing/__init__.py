"""Billing: Stripe Checkout, the customer billing portal, plan changes, webhooks and the emergency upgrade."""
