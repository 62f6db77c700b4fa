"""File sources: CSV, gzip'd CSV and XLSX exports landed in the raw layer.

`readers` finds and opens the files, `dialect` works out how each one is written (encoding,
delimiter, decimal mark, date formats, which column feeds which canonical field), `checks`
decides which rows can be read, `loader` lands them with COPY, and `probe` does the same reading
without writing anything (for `goalpost source add|test`).
"""
