echo "demo: filled in below"
