-- CreateTable
CREATE TABLE "LoginThrottle" (
    "key" VARCHAR(255) NOT NULL,
    "points" INTEGER NOT NULL DEFAULT 0,
    "expire" BIGINT,

    CONSTRAINT "LoginThrottle_pkey" PRIMARY KEY ("key")
);
