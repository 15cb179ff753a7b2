"""What a run leaves for a lecture: frames rendered as pictures for slides, GIF and MP4
animations, and the self-contained HTML page. Above the families, whose runs it draws."""
