"""`python -m video_client`: the `video-service` command."""

from video_client.cli import main

main()
