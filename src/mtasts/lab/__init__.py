"""The simulated mail internet: real DNS, HTTPS and SMTP servers on loopback."""
