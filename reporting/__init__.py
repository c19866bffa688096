"""Reporting for managers and auditors: the read model of case facts, KPIs, quality spot-checks,
satisfaction surveys and trends (README "Reporting"). Modules import what they need; this
package root stays empty so workflow code can import `reporting.facts` alone."""
