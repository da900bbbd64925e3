"""`make bench`: the service beside its floor, on loopback, in one run.

It starts the local stack on a throwaway database and measures:

1. upload to 201 against `ffmpeg -i in.wav -c:a libmp3lame -b:a 192k out.mp3`, in pairs;
2. peak RSS above idle of add_record and get_record while uploading and downloading (ffmpeg apart);
3. POST /register under wrk at concurrency 16, through nginx and straight to the function;
4. /register latency while two long uploads convert;
5. download throughput of a 50 MB record against nginx serving the same bytes from disk, and
   requests per second for a small cached record (each revalidated with get_record);
6. GET /records with 100,000 records for one user, first page and deep, and DELETE /record;
7. each function's start → first /healthz 200, and its idle RSS;
8. RECORD_STORAGE=s3 beside postgres: a second stack keeping new records in SeaweedFS, each row
   on both (upload ÷ ffmpeg, first download of a large record, a small one cached, deletes).

Beside every row, the same requests to a deliberately plain implementation of
the task (baseline.py) in the same run; the run exits 1 when the service is
behind it on any row (beside.py).

All traffic stays on 127.0.0.1, every loop is bounded in count and time.

Its modules, a line each, are listed once: in docs/architecture.md ("Every module").
"""
