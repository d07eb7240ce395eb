"""The participant portal: invitation, link, status and your data, unlink, leave the study (EN/ES)."""

__all__: list[str] = []
